"""The schedule's rules as data, and the time rules over them.

`schedule.yaml` (loaded and validated by `config.py`): quiet hours, the :00/:30 marks,
campaign pacing, the scheduler's own jobs, the calendar obligations' rules and texts,
holidays and festivals. `timing.py`: pure functions of a moment over those rules
(quiet hours, slots, quarters, occasions). `reach.py`: how an owner is reached on the
Official Account now (a customer-service text inside the 48 h window, else a template).

They live on the handlers' floor because the decisions below the edge read them
(the survey, the calendar obligations), and so do the edge's campaigns (`bot/campaigns.py`)
and the scheduler process (`scheduler/`), which only fires what these say.
"""
