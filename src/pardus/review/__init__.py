"""The review desk's room: the queue of sequences to review, and people's decisions about them.

A person reviews a sequence (a burst), not a photo: one decision covers its frames. Decisions are
human observations written beside the machine's, never over them; a later decision supersedes an
earlier one (both kept), and an undo brings back what was there. The web app's review pages and the
CLI only translate to these functions.
"""
