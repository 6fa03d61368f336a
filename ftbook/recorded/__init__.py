"""Recorded results: runs longer than a chapter can make (several seeds, large sizes, a GPU). Each `NAME.json` sits beside
`NAME.py`, the script that made it, and names the machine it ran on. `ftbook.config.recorded("NAME")` reads one;
`python -m ftbook.recorded.NAME --help` shows how to run it again. `anchor_trl_h200.json` is a reference measurement of
TRL on an H200 and has no script here: its `what` field says how it was made."""
