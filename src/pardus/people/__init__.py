"""People: accounts, roles, passwords, API tokens and signed-in browser sessions.

One room decides who someone is and what their role allows; the CLI (`pardus users ...`) and the
web app (sign-in, every route's permission check) both ask it, so a rule changes in one place.
"""
