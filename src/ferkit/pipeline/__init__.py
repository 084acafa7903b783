"""Photos and video end to end: image -> faces -> framed crops -> probabilities, and what is done with them.

- :mod:`ferkit.pipeline.recognize`: :class:`~ferkit.pipeline.recognize.Recognizer`, every face in a photo classified.
- :mod:`ferkit.pipeline.face_images`: face image files read whole, each one face (``ferkit classify``,
  ``predict --no-detect``); the bundled sample photo and face.
- :mod:`ferkit.pipeline.decode`: video files (PyAV) and cameras (OpenCV) as frames.
- :mod:`ferkit.pipeline.tracking`: faces followed across frames, probabilities smoothed per track.
- :mod:`ferkit.pipeline.outputs`: records in JSON, JSONL, CSV, Parquet and DataFrames; output files written safely.
- :mod:`ferkit.pipeline.annotate`: boxes and captions drawn on photos and frames.
- :mod:`ferkit.pipeline.charts`: emotion timelines and distributions.

The applications on top of it are top-level modules: :mod:`ferkit.predict` (folders of photos), :mod:`ferkit.video`,
:mod:`ferkit.serve`, :mod:`ferkit.batch` (Ray).
"""
