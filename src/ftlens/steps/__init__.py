"""The application layer: the steps a command runs, each a library call the CLI is a thin view
over. Each step uses the layers below (``core`` to judge, ``io`` to read, ``client`` and
``server`` to talk to models) and never the CLI or the report's rendering.

``audit``     the data audit of train/valid/test files (``ftlens audit``)
``finetune``  fine-tuning jobs through the OpenAI API: connect, upload, create, follow, fetch
              the results (``ftlens train``, ``ftlens curves --follow``)
``ask``       ask a model every test question and judge its answers (``ftlens eval``)
``judge``     judge predictions files (``ftlens metrics``)
``seen``      which test rows the model saw in training (used by ``ask`` and ``judge``)
``run``       the whole loop: audit → fine-tune → curves → ask → report (``ftlens run``)
``demo``      ``run`` on the bundled example data (``ftlens demo``)
"""
