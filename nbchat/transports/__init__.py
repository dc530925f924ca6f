"""One module per wire API, each turning a request into the deltas a ``Completion`` collects.

Chat Completions lives in ``nbchat.client`` (the default); the others are imported only
when a cell uses them.
"""
