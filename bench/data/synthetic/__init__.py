"""Deterministic synthetic KuaiRand-style data with a planted "incremental interest" structure.

The generator writes three CSV files whose names, headers, column order and value formats are
those of the official KuaiRand release, so the KuaiRand reader (`bench.data.kuairand`) reads them
like real files (release tag `synth`):

- ``log_standard_<M>_<D>_to_<M>_<D>_synth.csv``   month/day of the first and last day, no padding
- ``user_features_synth.csv``                     every user id 0..n_users-1, 31 columns
- ``video_features_basic_synth.csv``              every video id 0..n_items-1, 12 columns

The same preset and seed always give byte-identical files (one ``numpy.random.default_rng(seed)``
drives everything, in a fixed order); any other seed gives other data.

What the data plants
--------------------
The benchmark asks whether a model retrieves the items a user engages with *outside* the homepage
feed after a homepage visit, the ones a co-visitation item-CF channel (triggers = the user's latest
clicked items) misses. The generator builds a world where such items exist and are learnable:

* Topics. ``n_topics`` latent topics; the last ``n_hidden_topics`` are "niche" topics, the others
  "mainstream". Each item belongs to one topic; authors are nested in topics (an author only
  uploads in one topic). Within a topic, items have Zipf-like popularity (exponent
  ``feed_topic_zipf`` for mainstream topics, the flatter ``hidden_topic_zipf`` for niche ones);
  niche topics hold as many items as mainstream ones but little global popularity, so the hidden targets spread
  over a long tail that a co-visitation budget covers poorly.
  A topic's first tag (``tag`` column) is a noisy, many-to-one label of the topic; video duration
  has a per-topic typical length.
* Users. Each user has 2-6 *feed topics* (mainstream, favouring topics popular with the user's
  ``onehot_feat0`` group) and 1-2 *hidden topics* (niche). The first hidden topic is, with
  probability ``profile_fidelity``, a fixed function of ``onehot_feat2``; the second (half of the
  users) a fixed function of ``onehot_feat9``, with the same fidelity; otherwise random. So the
  profile predicts the hidden interests, and so does the user's earlier activity outside the
  main feed.
* Visits. Active (user, day) cells receive a number of impressions; about ``main_share`` of them
  are main-feed impressions (``tab`` 1). These come in visits: a visit is a burst of tab-1
  impressions a few seconds to about two minutes apart, lasting at most 45 minutes; the day is cut
  into 16 slots of 90 minutes (with a random phase per cell), a visit occupies one slot, so two
  visits are at least 30 minutes apart. Slots are chosen with the diurnal profile of the real log.
* Main feed. 88% of its items come from the user's feed topics, 8% from global popularity, 4%
  from the hidden topics. Clicked feed items co-occur within users: item-CF's home ground.
* Other scenarios (every tab but 1, with the real per-tab shares: 0, 4, 6 and 2 dominate, all 15
  tabs appear from the ``small`` preset up). Each such impression follows one of the user's
  visits by a truncated-exponential delay (mean 45 minutes, at most 4 hours). 80% of these items
  come from the hidden topics, 10% from feed topics, 10% from global popularity.
* Labels. ``is_click`` is a logistic function of a per-tab intercept (calibrated to the real
  per-tab click rates), bonuses for an item in the user's feed topics and in the user's hidden
  topics (the hidden bonus is large outside the main feed), and a per-item quality. ``long_view``,
  ``is_like``, ``is_follow``, ``is_comment``, ``is_forward``, ``is_hate``, ``is_profile_enter``,
  the stay times and ``play_time_ms`` are drawn conditionally on the click with rates close to the
  real log's. ``duration_ms`` is the item's ``video_duration`` (0 where that cell is blank).
  ``is_rand`` is always 0.

Quirks copied from the real files
---------------------------------
* About ``duplicate_share`` (2%) of the log rows are exact duplicates of another row (mostly in
  tabs 6 and 5, as in the real log); the row count *including* duplicates is exactly
  ``n_impressions``.
* ``date`` and ``hourmin`` (``H*100``: 0, 100, ..., 2300) are the Beijing hour of a logging time a
  few minutes (about 12) after ``time_ms``, as in the real log, so ``hourmin`` is often the next
  hour and ``date`` is the next day on about 1% of rows (late-evening rows). On the last day the
  shift is not applied across midnight, so ``date`` stays inside the file's date range.
  ``time_ms`` (epoch milliseconds) is the authoritative time; every row lies inside the period.
* ``user_features``: ``is_live_streamer`` is the out-of-range code -124 on about 77% of users (1
  otherwise), ``user_active_degree`` is ``UNKNOWN`` on a few; ``onehot_feat4`` is blank on about 3%
  and ``onehot_feat12``..``onehot_feat17`` are blank together on about 2.6% of users; these seven
  columns are written as floats (``1.0``). A few percent of users have no log rows at all.
* ``video_features_basic``: ``video_duration`` blank on about 3%, ``music_type`` blank where
  ``music_id`` is 0 (about 2.7%), ``tag`` blank on about 1.3% and a quoted list such as ``"39,68"``
  on about a quarter of the items; ``visible_status``, ``video_duration``, ``server_width``,
  ``server_height`` and ``music_type`` are floats (``720.0``), like the real file.

Days are Beijing calendar days (UTC+8); the log covers ``n_days`` whole days from ``start_date``
and its last day ends the period. Rows are sorted by ``time_ms``.
"""

from bench.data.synthetic.presets import (
    GENERATOR_VERSION,
    LOG_COLUMNS,
    PRESETS,
    USER_COLUMNS,
    USER_FILE,
    VIDEO_COLUMNS,
    VIDEO_FILE,
    SyntheticPreset,
)
from bench.data.synthetic.world import FOLLOW_LABELS, latent_structure
from bench.data.synthetic.writer import ensure_generated, generate, is_complete

__all__ = [
    "FOLLOW_LABELS",
    "GENERATOR_VERSION",
    "LOG_COLUMNS",
    "PRESETS",
    "USER_COLUMNS",
    "USER_FILE",
    "VIDEO_COLUMNS",
    "VIDEO_FILE",
    "SyntheticPreset",
    "ensure_generated",
    "generate",
    "is_complete",
    "latent_structure",
]
