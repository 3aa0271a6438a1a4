"""The app page's tabs, one module each (``segment``, ``generate``, ``translate``): a tab's Gradio
layout and the handlers that connect it to the tab's plain functions (``upsample_app.segment``,
``upsample_app.generate``, ``upsample_app.translate``). ``common`` holds what the tabs share (the
page's settings, the model worker, failures shown in the page), ``downloads`` the request
folders of the files they offer. ``upsample_app.ui`` assembles the tabs into the page.
"""
