"""The parents' daily digest: ``compose`` makes a canteen's day in words, ``outbox`` keeps what was made and
what is owed to each parents' channel, ``service`` makes and sends them at the configured time."""
