"""The toolkit's web app: segment photos, generate images and translate label maps in a browser.

``seg app`` and ``gan app`` start it (``upsample_app.cli``) with the checkpoints or exported models
a user has; one app holds a segmenter, a generator and a translator at once, each in its tab. The
tabs' work is plain functions (``upsample_app.segment``, ``upsample_app.generate``,
``upsample_app.translate``) over the models that ``upsample_app.models.load_models`` loads once;
``upsample_app.ui`` assembles the page from the tabs' Gradio layouts (``upsample_app.tabs``, one
module per tab), and those are the only modules that import Gradio. The server binds to 127.0.0.1
unless told otherwise, queues a bounded number of requests, limits uploads
(``upsample_app.limits``) and makes no network call.
"""
