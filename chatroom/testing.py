"""Test kit for chatroom plugin authors (pytest plugin, registered via ``pytest11``).

Work in progress: the ``chatroom_room`` fixture lands here shortly.
"""
