"""The web console (/console, 管理后台): staff run the shop from a browser, on top of the same services as
the admin API and the CLI. Pages are thin: parse, check the permission, call the service, audit, draw.

Structure (see README "The console" for adding a page):
  auth.py       the session cookie, `needs(permission)` on every route, the CSRF check of every form
  menu.py       the menu registry: each page registers its entry with the permission it needs
  rendering.py  `render_page` draws a template inside the layout with the menu the user may see
  i18n.py       console texts in zh-CN and en
  *_routes.py   one module per section; routes.py mounts them all
"""
