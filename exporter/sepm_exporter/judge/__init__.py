"""Judgements: key history, replica parity, client verdicts, problems and findings."""
