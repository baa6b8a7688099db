"""The app's routers, one per kind of caller: cameras, the alerts API, sign-in, pages."""
