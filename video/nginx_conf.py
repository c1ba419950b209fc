"""The media server's configuration: nginx with libnginx-mod-rtmp, rendered from typed options.

RTMP in (cameras push, relays push what they pull), HLS out (copied, never transcoded), the module's statistics
page for the platform, and every playlist and segment behind ``auth_request`` to the console, whose answers
nginx keeps for a moment so that a thousand parents of one canteen cost the console little.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Where Debian's libnginx-mod-rtmp puts the module.
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
#: The RTMP application cameras publish to: rtmp://host:port/live/{camera id}?key={stream key}.
APPLICATION = "live"
#: One HLS fragment: a player is at most about this far behind, and a revoked viewer stops soon after.
FRAGMENT_S = 1
#: Fragments kept in each playlist (and on disk): the rolling buffer evidence clips are cut from.
PLAYLIST_S = 40
#: How long nginx keeps the console's yes or no for one viewer of one camera: revocation takes at most this
#: long plus what the player has buffered.
AUTH_CACHE_S = 2
#: A publisher that sends nothing for this long is dropped, so a frozen camera shows as not publishing.
IDLE_PUBLISHER_S = 10
#: The characters of a path credential, a viewer id and a camera id (ids follow devices/ids.py).
CREDENTIAL_RE = r"[A-Za-z0-9._~-]{8,512}"
VIEWER_RE = r"[A-Za-z0-9_-]{8,64}"
CAMERA_RE = r"[a-z0-9][a-z0-9._-]{0,63}"
FILE_RE = r"index\.m3u8|[0-9]+\.ts"
#: /video/{credential}/{viewer}/{camera}/{file}: the credential and viewer are in the path, not the query, so that
#: the playlist's relative segment names carry them too (no player needs to add anything).
VIDEO_LOCATION = (
    f"^/video/(?<credential>{CREDENTIAL_RE})/(?<viewer>{VIEWER_RE})/(?<camera>{CAMERA_RE})/(?<file>{FILE_RE})$"
)


@dataclass(frozen=True, kw_only=True)
class MediaServerConfig:
    workdir: Path
    rtmp_bind: str
    rtmp_port: int
    http_bind: str
    http_port: int
    #: The console's base URL as the media server reaches it, and the secret its hooks carry.
    console_url: str
    hook_secret: str
    #: The user the worker runs as when nginx is started by root (it writes the HLS fragments).
    worker_user: str | None = None
    #: Also serve the fragments without authorisation under /open/ (the benchmark's baseline only).
    open_location: bool = False

    @property
    def hls_dir(self) -> Path:
        return self.workdir / "hls"

    @property
    def served_log(self) -> Path:
        """One line per playlist or segment served: camera, bytes, status (read for bytes out)."""
        return self.workdir / "served.log"

    def render(self) -> str:
        hls, work = self.hls_dir, self.workdir
        user = f"user {self.worker_user};\n" if self.worker_user else ""
        hook = f"{self.console_url}/media"
        files = (
            f"alias {hls}/$camera/$file;\n"
            "      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }\n"
            "      add_header Cache-Control no-cache always;\n"
            "      add_header Access-Control-Allow-Origin * always;"
        )
        open_location = (
            f"""
    location ~ "^/open/(?<camera>{CAMERA_RE})/(?<file>{FILE_RE})$" {{
      {files}
    }}"""
            if self.open_location
            else ""
        )
        return f"""# Written by Shian at every start (video/nginx_conf.py); edits are lost.
{user}daemon off;
worker_processes 1;  # the RTMP module's live streams and statistics live in one worker
pid {work}/nginx.pid;
error_log {work}/error.log notice;
load_module {RTMP_MODULE};

events {{
  worker_connections 8192;
}}

rtmp {{
  server {{
    listen {self.rtmp_bind}:{self.rtmp_port};
    chunk_size 4096;
    application {APPLICATION} {{
      live on;
      record off;
      drop_idle_publisher {IDLE_PUBLISHER_S}s;
      # every publisher is asked about: its stream name must be a camera and its key that camera's
      on_publish {hook}/publish?secret={self.hook_secret};
      notify_method post;
      # pictures leave only as HLS, through the authorised location below
      allow play 127.0.0.1;
      deny play all;
      hls on;
      hls_path {hls};
      hls_nested on;
      hls_fragment {FRAGMENT_S}s;
      hls_playlist_length {PLAYLIST_S}s;
      hls_cleanup on;
    }}
  }}
}}

http {{
  access_log off;
  client_body_temp_path {work}/temp/body;
  proxy_temp_path {work}/temp/proxy;
  fastcgi_temp_path {work}/temp/fastcgi;
  uwsgi_temp_path {work}/temp/uwsgi;
  scgi_temp_path {work}/temp/scgi;
  proxy_cache_path {work}/auth-cache levels=1 keys_zone=shian_auth:8m max_size=64m inactive=30s;
  log_format shian_served '$camera $body_bytes_sent $status';
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000;

  server {{
    listen {self.http_bind}:{self.http_port};

    location = /stat {{
      allow 127.0.0.1;
      deny all;
      rtmp_stat all;
    }}

    location ~ "{VIDEO_LOCATION}" {{
      auth_request /_authorise;
      access_log {self.served_log} shian_served buffer=32k flush=1s;
      {files}
    }}

    location = /_authorise {{
      internal;
      proxy_pass {hook}/authorise;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Shian-Media-Secret {self.hook_secret};
      proxy_cache shian_auth;
      proxy_cache_key "$credential|$viewer|$camera";
      proxy_cache_valid 200 403 {AUTH_CACHE_S}s;
      proxy_cache_lock on;
      proxy_ignore_headers Cache-Control Expires Set-Cookie;
    }}{open_location}
  }}
}}
"""
