"""What keeps a run's files whole: atomic writes, one writer, clean interrupts."""
