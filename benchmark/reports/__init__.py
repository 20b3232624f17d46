"""From records to what a user reads: the union tables, the leaderboard and its statistics,
the printed tables and the figures."""
