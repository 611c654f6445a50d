"""Recipients, templates, preferences and messages: what to send to whom, over the core."""
