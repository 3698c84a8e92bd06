"""Face-mask data: the Kaggle folder loader and the embedded synthetic data set.

* :func:`load_face_mask_directory` / :func:`load_image` read the Kaggle "Sophisticated Face Mask
  Dataset" layout (or any folder with one sub-folder per class) and single photos.
* :func:`stream_face_mask_directory` reads the same folders as a tf.data pipeline (parallel decode,
  optional disk cache, prefetch) for folders larger than memory.
* :func:`load_faces` is the one loader of "a folder, or else the synthetic faces" that every command
  uses; :func:`stream_faces` splits a folder the same way and streams its training share
  (:func:`shuffled_batches` reorders a stream every pass for Keras' ``fit``).
* :func:`synthetic_face_masks` draws the library's default, offline data set in the same three
  classes; :func:`write_synthetic_face_mask_directory` writes it as PNGs in the Kaggle layout.

Label ``i`` means ``CLASS_NAMES[i]`` everywhere in robustmask.
"""

from robustmask.datasets.directory import CLASS_NAMES, FaceMaskData, load_face_mask_directory, load_image
from robustmask.datasets.source import StreamedFaces, load_faces, shuffled_batches, stream_faces
from robustmask.datasets.streaming import StreamReport, stream_face_mask_directory, stream_report
from robustmask.datasets.synthetic import (
    SUBCATEGORIES,
    synthetic_face_masks,
    write_synthetic_face_mask_directory,
)

__all__ = [
    "CLASS_NAMES",
    "SUBCATEGORIES",
    "FaceMaskData",
    "load_face_mask_directory",
    "load_faces",
    "load_image",
    "StreamedFaces",
    "StreamReport",
    "shuffled_batches",
    "stream_face_mask_directory",
    "stream_faces",
    "stream_report",
    "synthetic_face_masks",
    "write_synthetic_face_mask_directory",
]
