"""Recipients, templates, preferences and messages: the layer over notifications that lets a
client say what to send to whom (issue 17)."""
