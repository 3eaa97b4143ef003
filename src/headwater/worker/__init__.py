"""Background work: the scheduler turns cron into pending runs, the runner executes them."""
