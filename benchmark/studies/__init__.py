"""Studies: grids of runs that answer one question, with their summary and figures."""
