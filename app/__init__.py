"""The toolkit's web app: segment photos, generate images and translate label maps in a browser.

``seg app`` and ``gan app`` start it (``app.cli``) with the checkpoints or exported models a user
has; one app holds a segmenter, a generator and a translator at once, each in its tab. The tabs'
work is plain functions (``app.segment``, ``app.generate``, ``app.translate``) over the models
that ``app.models.load_models`` loads once; ``app.ui`` lays them out with Gradio and is the only
module that imports it. The server binds to 127.0.0.1 unless told otherwise, queues a bounded
number of requests, limits uploads (``app.limits``) and makes no network call.
"""
