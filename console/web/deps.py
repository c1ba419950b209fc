"""The web wing's FastAPI dependencies: the console, the viewer's language and words, who is asking (a session
or a bearer token), and the ``Annotated`` aliases routes declare them with.

Sessions are signed HttpOnly SameSite cookies (Starlette's session middleware over itsdangerous) naming a
session the console's store keeps, so that logging out, signing out everywhere, a changed or removed password
end it on the server too, whatever copy of the cookie is left.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from console.access import Viewer, viewer_for, viewer_of_session
from console.context import Console
from console.words import LANGUAGES, Language, Words

SESSION_COOKIE = "shian_session"
SESSION_MAX_AGE_S = 8 * 3600
LANGUAGE_COOKIE = "shian_lang"


class LoginRequired(Exception):
    """A page asked for by nobody logged in: answered with a redirect to the login page."""


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def language_of(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else "zh"


def words_of(request: Request) -> Words:
    return Words(language_of(request), console_of(request).registry.catalogue)


def session_viewer(request: Request) -> Viewer | None:
    """The viewer of the session cookie, if it is signed and unexpired, its session is still open on the server,
    the account's password is the one it was opened with, and the account still exists."""
    username, session_id = request.session.get("user"), request.session.get("sid")
    if not isinstance(username, str) or not isinstance(session_id, str):
        return None
    console = console_of(request)
    return viewer_of_session(console.registry, console.passwords, username, console.store.session(session_id))


def page_viewer(request: Request) -> Viewer:
    viewer = session_viewer(request)
    if viewer is None:
        raise LoginRequired
    return viewer


def api_viewer(request: Request) -> Viewer:
    """A bearer token's account, or the session's (a browser calling the API)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        console = console_of(request)
        username = console.store.token_user(header[7:].strip())
        viewer = viewer_for(console.registry, username) if username else None
        if viewer is None:
            raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
        request.state.by_token = True
        return viewer
    viewer = session_viewer(request)
    if viewer is None:
        raise HTTPException(401, "log in or send a bearer token", headers={"WWW-Authenticate": "Bearer"})
    request.state.by_token = False
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]
ConsoleDep = Annotated[Console, Depends(console_of)]
WordsDep = Annotated[Words, Depends(words_of)]
