"""The command line: flags -> Config -> the job; the only place that knows argv and exit codes."""
