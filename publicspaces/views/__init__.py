"""The municipal pages (/municipality/): a map of the district's spaces with a form to add
one by drawing it, each space's page (details, shape, audit, recovery project step by step,
photos, activities, history), a filtered list with its CSV export, the photo files behind a
scope check, and the settings of the planner map's layer of spaces.

Scope (publicspaces.scope): municipal staff see and edit their district only; another
district's space is a 404 on every URL. Program staff and admins see and edit all;
planners read everything and get no forms. Anyone else signed in gets 403, anonymous
visitors the login page. Every change goes through publicspaces.services; a refused one
re-renders the page with the service's messages next to the fields (HTTP 400), a
successful one redirects (POST-redirect-GET).
"""
