"""The active-learning cycle: train -> evaluate -> MC inference -> score -> select -> oracle
(``loop``), and what each cycle records about the pool and its clicks."""
