"""The console's web wing: everything that speaks HTTP. ``app`` (the front door, imported only by the wiring),
``server`` (uvicorn in the platform's loop), ``deps`` (who asks, in which language), ``render`` (the page kit)
and ``routes/``, one router per route family, none importing another. Nothing below the wing imports it."""
