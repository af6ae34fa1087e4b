"""GeneralPoints (the 24 card game) as harness tasks gp-l and gp-vl."""
