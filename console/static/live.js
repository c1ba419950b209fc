// Plays every tile's live kitchen: hls.js where the browser has Media Source Extensions (Chromium, Android
// web views), the browser's own HLS where it plays it natively (Safari, iOS mini-program web views). When a
// player stops (refused, no picture, the link revoked) it asks the console why, and the tile says so in words.
(function () {
  "use strict";
  var STALL_S = 6;

  function say(tile, words) {
    var video = tile.querySelector("video");
    if (tile.hls) { tile.hls.destroy(); tile.hls = null; }
    if (video) { video.removeAttribute("src"); video.load(); video.hidden = true; }
    tile.querySelector(".words").textContent = words;
    tile.dataset.stopped = "1";
  }

  // A camera that is live by the console's account but did not play (its first segment not written yet, a
  // network blip) is tried again, a little later each time; anything else is said in words.
  function why(tile) {
    if (tile.dataset.stopped || tile.asking) { return; }
    tile.asking = true;
    fetch(tile.dataset.state, { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        tile.asking = false;
        if (s.state !== "live") { say(tile, s.words); return; }
        tile.retries = (tile.retries || 0) + 1;
        if (tile.hls) { tile.hls.destroy(); tile.hls = null; }
        setTimeout(function () { load(tile); }, Math.min(1000 * tile.retries, 10000));
      })
      .catch(function () { tile.asking = false; say(tile, tile.dataset.offline); });
  }

  function load(tile) {
    var video = tile.querySelector("video");
    var src = tile.dataset.playlist;
    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls({ liveSyncDurationCount: 2, manifestLoadingMaxRetry: 2, levelLoadingMaxRetry: 2 });
      hls.on(window.Hls.Events.ERROR, function (event, data) { if (data.fatal) { why(tile); } });
      hls.loadSource(src);
      hls.attachMedia(video);
      tile.hls = hls;
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
    } else {
      say(tile, tile.dataset.unsupported);
      return false;
    }
    var played = video.play();
    if (played && played.catch) { played.catch(function () {}); }
    return true;
  }

  function play(tile) {
    var video = tile.querySelector("video");
    if (!load(tile)) { return; }
    video.addEventListener("error", function () { if (!tile.hls) { why(tile); } });
    // a live picture that stops advancing (its segments refused, its camera gone) is asked about too
    var last = -1, still = 0;
    setInterval(function () {
      if (tile.dataset.stopped || video.paused) { return; }
      if (video.currentTime === last) { still += 1; } else { still = 0; last = video.currentTime; }
      if (still * 2 >= STALL_S) { still = 0; why(tile); }
    }, 2000);
  }

  document.querySelectorAll(".camera[data-playlist]").forEach(play);
})();
