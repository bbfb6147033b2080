"""Sources: from disk (and later the network) to observed facts and change sets."""
