"""calguard inside other tools: each integration is an optional extra (``calguard[inspect]``)."""
