"""Experiments built on the trainer: phases as data (`phases`), one report writer (`report`),
the three-phase pipeline (`pipeline`) and the memory-bank experiment (`knowledge`)."""
