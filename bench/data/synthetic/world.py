"""The latent world behind one synthetic dataset: topics and items (with the video feature table),
users with their feed and hidden topics (with the user feature table), the SyntheticLatent ground
truth that tests and diagnostics read (latent_structure), and _World, the sampling tables the event
simulator draws from; plus the distribution constants only the world uses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.synthetic._util import _gumbel_topk_mask, _norm
from bench.data.synthetic.presets import SyntheticPreset, get_preset

# ---------------------------------------------------------------------------------------------
# Fixed shapes borrowed (approximately) from the real log

MAX_FEED_TOPICS = 6
NICHE_SIZE_FACTOR = 1.0  # a niche topic holds this many times the items of a mainstream one, on average

DEGREES = ("full_active", "high_active", "middle_active", "2_14_day_new", "low_active", "single_low_active",
           "30day_retention", "day_new", "UNKNOWN")
DEGREE_SHARE = np.array([0.658, 0.226, 0.078, 0.023, 0.011, 0.0025, 0.0006, 0.0004, 0.0002])
UPLOAD_TYPES = ("LongImport", "Web", "ShortImport", "Kmovie", "LongPicture", "UNKNOWN", "PictureSet", "LongCamera",
                "ShortCamera", "ShareFromOtherApp", "FollowShoot", "AiCutVideo", "PhotoCopy", "LipsSync")
UPLOAD_SHARE = np.array([2925, 2416, 917, 879, 143, 80, 73, 64, 43, 29, 10, 2, 1, 1], dtype=np.float64)
SCREENS = np.array([(720, 1280), (1280, 720), (960, 720), (720, 1282), (720, 960), (720, 720), (1080, 1440),
                    (1080, 720), (1030, 720), (1440, 1440), (576, 1024), (540, 960), (810, 1440), (1080, 1920)],
                   dtype=np.float64)
SCREEN_SHARE = np.array([5090, 1367, 179, 114, 90, 59, 48, 38, 25, 22, 18, 18, 15, 12], dtype=np.float64)
MUSIC_TYPES = np.array([9.0, 4.0, 8.0, 7.0, 11.0])
MUSIC_SHARE = np.array([6665, 657, 41, 14, 3], dtype=np.float64)
N_TAG_VALUES = 68  # tags are 1..68
SECOND_TAGS = np.array([68, 43, 62, 67, 60, 18, 54, 7])

FOLLOW_EDGES = (0, 10, 50, 100, 150, 250, 500)  # right-closed bins
FOLLOW_LABELS = ("0", "(0,10]", "(10,50]", "(50,100]", "(100,150]", "(150,250]", "(250,500]", "500+")
FANS_EDGES = (1, 10, 100, 1_000, 5_000, 10_000, 100_000, 1_000_000)  # left-closed bins
FANS_LABELS = ("0", "[1,10)", "[10,100)", "[100,1k)", "[1k,5k)", "[5k,1w)", "[1w,10w)", "[10w,100w)", "[100w,1000w)")
FRIEND_EDGES = (1, 5, 30, 60, 120, 250)
FRIEND_LABELS = ("0", "[1,5)", "[5,30)", "[30,60)", "[60,120)", "[120,250)", "250+")
REGISTER_EDGES = (7, 14, 30, 60, 90, 180, 365, 730)  # right-closed bins
REGISTER_LABELS = ("0-7", "8-14", "15-30", "31-60", "61-90", "91-180", "181-365", "366-730", "730+")

FEAT1_SHARE = np.array([0.031, 0.220, 0.187, 0.126, 0.265, 0.101, 0.070])
FEAT2_TOP = {2: 0.252, 19: 0.202, 29: 0.198, 10: 0.187, 31: 0.060, 28: 0.030, 9: 0.028, 48: 0.011}
FEAT9_SHARE = np.array([0.0095, 0.223, 0.052, 0.228, 0.116, 0.147, 0.223])
FEAT10_SHARE = np.array([0.158, 0.0013, 0.292, 0.400, 0.149])
FEAT11_SHARE = np.array([0.745, 0.0097, 0.245, 0.0002, 0.0001])
FEAT4_SHARE = np.array([3039, 10083, 5061, 3184, 2021, 1062, 862, 379, 401, 270, 8, 16, 6, 4, 2], dtype=np.float64)
FEAT12_17_ONE = np.array([0.724, 0.068, 0.119, 0.023, 0.040, 0.0145])


def _zipf_codes(rng: np.random.Generator, n_codes: int, size: int, power: float) -> np.ndarray:
    """Codes 0..n_codes-1 with a skewed, shuffled frequency profile."""
    perm = rng.permutation(n_codes)
    return perm[np.minimum((n_codes * rng.random(size) ** power).astype(np.int64), n_codes - 1)]


# ---------------------------------------------------------------------------------------------
# The latent world (items, users, interests)


@dataclass
class SyntheticLatent:
    """The hidden ground truth behind one generated dataset (same preset and seed as the files).

    Topics 0..n_topics-n_hidden_topics-1 are mainstream (feed) topics, the rest niche (hidden) ones.
    """

    preset: SyntheticPreset
    item_topic: np.ndarray  # [n_items] int32, topic of each video_id
    item_author: np.ndarray  # [n_items] int64, author_id of each video_id
    user_feed: np.ndarray  # [n_users, n_topics] bool, the user's feed topics
    user_hidden: np.ndarray  # [n_users, n_topics] bool, the user's hidden topics
    user_profile_topic: np.ndarray  # [n_users] int32, hidden topic the profile (onehot_feat2) predicts
    user_hidden_main: np.ndarray  # [n_users] int32, the user's first hidden topic
    n_feed_topics: int  # number of mainstream topics

    @property
    def hidden_topics(self) -> np.ndarray:
        return np.arange(self.n_feed_topics, self.preset.n_topics)


@dataclass
class _World:
    latent: SyntheticLatent
    videos: pd.DataFrame | None  # the video feature file's rows (dropped once written)
    users: pd.DataFrame | None  # the user feature file's rows
    # item sampling
    item_at: np.ndarray  # [n_items] video id at each topic-sorted position
    topic_lo: np.ndarray  # [n_topics] first position of each topic
    topic_hi: np.ndarray  # [n_topics] one past the last position
    within_cum: np.ndarray  # [n_items + 1] cumulative within-topic popularity over positions
    global_cum: np.ndarray  # [n_items + 1] cumulative global popularity over positions
    item_quality: np.ndarray  # [n_items] click-logit offset, by video id
    item_duration_ms: np.ndarray  # [n_items] int64, 0 where the video_duration cell is blank
    # user sampling
    user_weight: np.ndarray  # [n_users] activity weight (0 for silent users)
    user_day_share: np.ndarray  # [n_users] probability of being active on a day
    feed_topics: np.ndarray  # [n_users, MAX_FEED_TOPICS] int32, -1 padded
    feed_cum: np.ndarray  # [n_users, MAX_FEED_TOPICS] cumulative weights, 2.0 padded
    feed_count: np.ndarray  # [n_users]
    hidden_topics: np.ndarray  # [n_users, 2] int32, -1 padded
    hidden_cum: np.ndarray  # [n_users, 2]
    hidden_count: np.ndarray  # [n_users]


def _build_items(p: SyntheticPreset, rng: np.random.Generator):
    n, T, H = p.n_items, p.n_topics, p.n_hidden_topics
    n_main = T - H
    # Topic sizes and global shares: mainstream topics share most of the popularity (Zipf-like over
    # topics); niche topics hold as many items but little popularity.
    size_w = rng.lognormal(0.0, 0.5, T)
    size_w[n_main:] *= NICHE_SIZE_FACTOR
    sizes = rng.multinomial(n - T, _norm(size_w)) + 1
    lo = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    hi = lo + sizes
    topic_mass = np.empty(T)
    topic_mass[:n_main] = rng.permutation((np.arange(n_main) + 1.0) ** -0.8)
    topic_mass[n_main:] = 0.3 * topic_mass[:n_main].mean() * rng.lognormal(0.0, 0.3, H)
    topic_mass = _norm(topic_mass)

    pos_topic = np.repeat(np.arange(T, dtype=np.int32), sizes)
    rank = np.arange(n) - lo[pos_topic] + 1.0
    alpha = np.where(pos_topic < n_main, p.feed_topic_zipf, p.hidden_topic_zipf)
    w = rank ** -alpha
    topic_w = np.bincount(pos_topic, weights=w, minlength=T)
    within_cum = np.concatenate([[0.0], np.cumsum(w)])
    global_cum = np.concatenate([[0.0], np.cumsum(w / topic_w[pos_topic] * topic_mass[pos_topic])])

    item_at = rng.permutation(n)  # position -> video id; ids carry no topic order
    item_topic = np.empty(n, dtype=np.int32)
    item_topic[item_at] = pos_topic

    # Authors nested in topics: about 1.15 videos per author, a few prolific ones.
    n_auth = np.maximum(1, np.round(sizes / 1.15)).astype(np.int64)
    auth_lo = np.concatenate([[0], np.cumsum(n_auth)[:-1]])
    local = np.minimum((n_auth[pos_topic] * rng.random(n) ** 1.6).astype(np.int64), n_auth[pos_topic] - 1)
    slots = int(n_auth.sum())
    id_range = max(9_000_000, 3 * slots)
    author_ids = rng.choice(id_range, size=slots, replace=False) + 1
    item_author = np.empty(n, dtype=np.int64)
    item_author[item_at] = author_ids[auth_lo[pos_topic] + local]

    # Side features, by video id.
    topic_log_dur = rng.normal(np.log(75_000.0), 0.5, T)
    dur = np.exp(topic_log_dur[item_topic] + rng.normal(0.0, 0.85, n))
    dur = np.clip(np.round(dur), 5_000, 1_200_000)
    dur_blank = rng.random(n) < 0.032
    video_duration = np.where(dur_blank, np.nan, dur)

    video_type = np.array(["NORMAL", "AD", "UNKNOWN"], dtype=object)[
        rng.choice(3, size=n, p=_norm([0.98987, 0.01, 0.00013]))]
    first = p.first_day
    upload_days = np.array([(first - dt.timedelta(days=k)).isoformat() for k in (3, 2, 1)], dtype=object)
    upload_dt = upload_days[rng.choice(3, size=n, p=_norm([0.37, 0.45, 0.18]))]
    upload_type = np.array(UPLOAD_TYPES, dtype=object)[rng.choice(len(UPLOAD_TYPES), size=n, p=_norm(UPLOAD_SHARE))]
    screen = SCREENS[rng.choice(len(SCREENS), size=n, p=_norm(SCREEN_SHARE))]

    no_music = rng.random(n) < 0.027
    hits = rng.integers(4_000_000_000, 9_170_000_000, size=max(1, n // 20))
    own = rng.integers(4_000_000_000, 9_170_000_000, size=n)
    reuse = rng.random(n) < 0.3
    music_id = np.where(reuse, hits[np.minimum((len(hits) * rng.random(n) ** 2).astype(np.int64), len(hits) - 1)], own)
    music_id = np.where(no_music, 0, music_id)
    music_type = np.where(no_music, np.nan, MUSIC_TYPES[rng.choice(len(MUSIC_TYPES), size=n, p=_norm(MUSIC_SHARE))])

    # Tags: a topic's primary tag (several topics may share one) plus sometimes secondary tags.
    topic_tag = rng.integers(1, N_TAG_VALUES + 1, T)
    topic_second = SECOND_TAGS[rng.integers(0, len(SECOND_TAGS), T)]
    prim = np.where(rng.random(n) < 0.1, rng.integers(1, N_TAG_VALUES + 1, n), topic_tag[item_topic])
    n_tags = 1 + (rng.random(n) < 0.232) + (rng.random(n) < 0.02)
    sec = np.where(rng.random(n) < 0.8, topic_second[item_topic], SECOND_TAGS[rng.integers(0, len(SECOND_TAGS), n)])
    third = SECOND_TAGS[rng.integers(0, len(SECOND_TAGS), n)]
    sec = np.where(n_tags >= 2, sec, 0)
    third = np.where((n_tags >= 3) & (third != sec) & (third != prim), third, 0)
    sec = np.where(sec == prim, 0, sec)
    key = (prim * 100 + sec) * 100 + third
    tag_blank = rng.random(n) < 0.013
    uniq, inv = np.unique(key, return_inverse=True)
    texts = np.array([",".join(str(v) for v in (k // 10_000, (k // 100) % 100, k % 100) if v) for k in uniq.tolist()],
                     dtype=object)
    tag = np.where(tag_blank, np.nan, texts[inv])

    videos = pd.DataFrame({
        "video_id": np.arange(n, dtype=np.int64),
        "author_id": item_author,
        "video_type": video_type,
        "upload_dt": upload_dt,
        "upload_type": upload_type,
        "visible_status": np.zeros(n),
        "video_duration": video_duration,
        "server_width": screen[:, 0],
        "server_height": screen[:, 1],
        "music_id": music_id.astype(np.int64),
        "music_type": music_type,
        "tag": tag,
    })
    quality = rng.normal(0.0, 0.4, n)
    duration_ms = np.where(dur_blank, 0, dur).astype(np.int64)
    return dict(videos=videos, item_at=item_at, topic_lo=lo, topic_hi=hi, within_cum=within_cum,
                global_cum=global_cum, item_topic=item_topic, item_author=item_author, item_quality=quality,
                item_duration_ms=duration_ms, topic_mass=topic_mass)


def _range_labels(values: np.ndarray, edges, labels, right: bool) -> np.ndarray:
    idx = np.searchsorted(np.asarray(edges), values, side="left" if right else "right")
    return np.array(labels, dtype=object)[idx]


def _build_users(p: SyntheticPreset, rng: np.random.Generator, topic_mass: np.ndarray):
    U, T, H = p.n_users, p.n_topics, p.n_hidden_topics
    n_main = T - H

    # Activity and the activity-degree label.
    z = rng.normal(0.0, 1.0, U)
    weight = np.exp(z)
    silent = rng.random(U) < p.silent_user_share
    weight[silent] = 0.0
    base = np.log(p.active_day_share / (1.0 - p.active_day_share + 1e-9) + 1e-9)
    day_share = np.clip(1.0 / (1.0 + np.exp(-(base + 0.8 * z + rng.normal(0.0, 0.5, U)))), 0.03, 1.0)
    order = np.argsort(-(z + rng.normal(0.0, 0.7, U)), kind="stable")
    cuts = np.round(np.cumsum(DEGREE_SHARE / DEGREE_SHARE.sum()) * U).astype(np.int64)
    degree_idx = np.empty(U, dtype=np.int64)
    degree_idx[order] = np.searchsorted(cuts, np.arange(U), side="right")
    degree_idx = np.minimum(degree_idx, len(DEGREES) - 1)

    # Profile codes (marginals close to the real file's).
    f = {}
    f[0] = (rng.random(U) < 0.563).astype(np.int64)
    f[1] = rng.choice(7, size=U, p=_norm(FEAT1_SHARE))
    rest = [c for c in range(50) if c not in FEAT2_TOP]
    codes2 = np.array(list(FEAT2_TOP) + rest)
    share2 = np.array(list(FEAT2_TOP.values()) + [(1.0 - sum(FEAT2_TOP.values())) / len(rest)] * len(rest))
    f[2] = codes2[rng.choice(50, size=U, p=_norm(share2))]
    f[3] = _zipf_codes(rng, 1471, U, 2.5)
    f[4] = rng.choice(len(FEAT4_SHARE), size=U, p=_norm(FEAT4_SHARE)).astype(np.float64)
    f[4][rng.random(U) < 0.032] = np.nan
    f[5] = np.where(rng.random(U) < 0.994, 0, rng.integers(1, 34, U))
    f[6] = rng.choice(3, size=U, p=_norm([0.54, 0.454, 0.006]))
    f[7] = _zipf_codes(rng, 118, U, 2.0)
    f[8] = _zipf_codes(rng, 454, U, 1.5)
    f[9] = rng.choice(7, size=U, p=_norm(FEAT9_SHARE))
    f[10] = rng.choice(5, size=U, p=_norm(FEAT10_SHARE))
    f[11] = rng.choice(5, size=U, p=_norm(FEAT11_SHARE))
    blank = rng.random(U) < 0.026
    for k, one in zip(range(12, 18), FEAT12_17_ONE):
        f[k] = np.where(blank, np.nan, (rng.random(U) < one).astype(np.float64))

    follow = np.clip(np.round(rng.lognormal(np.log(155.0), 1.5, U)), 0, 5003).astype(np.int64)
    fans = np.clip(np.floor(rng.lognormal(np.log(48.0), 2.0, U) - 0.5), 0, 2_000_000).astype(np.int64)
    friend = np.clip(np.floor(rng.lognormal(np.log(16.0), 2.2, U) - 1.0), 0, 4995).astype(np.int64)
    young = rng.random(U) < 0.08
    register = np.where(young, rng.integers(14, 366, U), np.round(rng.normal(1250.0, 600.0, U)))
    register = np.clip(register, 14, 3624).astype(np.int64)

    users = pd.DataFrame({
        "user_id": np.arange(U, dtype=np.int64),
        "user_active_degree": np.array(DEGREES, dtype=object)[degree_idx],
        "is_lowactive_period": np.zeros(U, dtype=np.int64),
        "is_live_streamer": np.where(rng.random(U) < 0.774, -124, 1).astype(np.int64),
        "is_video_author": (rng.random(U) < 0.816).astype(np.int64),
        "follow_user_num": follow,
        "follow_user_num_range": _range_labels(follow, FOLLOW_EDGES, FOLLOW_LABELS, right=True),
        "fans_user_num": fans,
        "fans_user_num_range": _range_labels(fans, FANS_EDGES, FANS_LABELS, right=False),
        "friend_user_num": friend,
        "friend_user_num_range": _range_labels(friend, FRIEND_EDGES, FRIEND_LABELS, right=False),
        "register_days": register,
        "register_days_range": _range_labels(register, REGISTER_EDGES, REGISTER_LABELS, right=True),
        **{f"onehot_feat{k}": f[k] for k in range(18)},
    })

    # Feed topics: 2..6 mainstream topics, the preference order depending on onehot_feat0.
    pref = np.stack([topic_mass[:n_main], topic_mass[:n_main].copy()])
    swap = rng.random(n_main) < 0.4
    pref[1, swap] = rng.permutation(pref[1, swap])
    k_feed = np.clip(2 + rng.poisson(1.5, U), 2, min(MAX_FEED_TOPICS, n_main))
    mask = _gumbel_topk_mask(rng, np.log(pref[f[0]]), k_feed)
    raw_w = rng.gamma(1.0, 1.0, (U, n_main)) * mask
    feed_topics = np.full((U, MAX_FEED_TOPICS), -1, dtype=np.int32)
    feed_w = np.zeros((U, MAX_FEED_TOPICS))
    r, c = np.nonzero(mask)
    slot = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    feed_topics[r, slot] = c
    feed_w[r, slot] = raw_w[r, c]
    feed_cum = np.cumsum(feed_w / feed_w.sum(1, keepdims=True), axis=1)
    feed_cum[feed_topics < 0] = 2.0

    # Hidden topics: functions of profile codes, kept with probability `profile_fidelity`.
    table1 = rng.integers(0, H, 50)
    table2 = rng.integers(0, H, 7)
    profile_topic = table1[f[2]]
    h1 = np.where(rng.random(U) < p.profile_fidelity, profile_topic, rng.integers(0, H, U))
    h2 = np.where(rng.random(U) < p.profile_fidelity, table2[f[9]], rng.integers(0, H, U))
    if H > 1:
        h2 = np.where(h2 == h1, (h1 + rng.integers(1, H, U)) % H, h2)
        has2 = rng.random(U) < 0.5
    else:
        has2 = np.zeros(U, dtype=bool)
    hidden_topics = np.stack([h1 + n_main, np.where(has2, h2 + n_main, -1)], axis=1).astype(np.int32)
    hidden_cum = np.where(has2[:, None], np.array([[0.65, 1.0]]), np.array([[1.0, 2.0]]))

    user_feed = np.zeros((U, T), dtype=bool)
    user_feed[r, c] = True
    user_hidden = np.zeros((U, T), dtype=bool)
    user_hidden[np.arange(U), hidden_topics[:, 0]] = True
    user_hidden[np.flatnonzero(has2), hidden_topics[has2, 1]] = True

    return dict(users=users, weight=weight, day_share=day_share, feed_topics=feed_topics, feed_cum=feed_cum,
                feed_count=k_feed, hidden_topics=hidden_topics, hidden_cum=hidden_cum,
                hidden_count=1 + has2.astype(np.int64), user_feed=user_feed, user_hidden=user_hidden,
                profile_topic=(profile_topic + n_main).astype(np.int32), hidden_main=hidden_topics[:, 0].copy())


def _build_world(p: SyntheticPreset, rng: np.random.Generator) -> _World:
    it = _build_items(p, rng)
    us = _build_users(p, rng, it["topic_mass"])
    latent = SyntheticLatent(
        preset=p, item_topic=it["item_topic"], item_author=it["item_author"], user_feed=us["user_feed"],
        user_hidden=us["user_hidden"], user_profile_topic=us["profile_topic"], user_hidden_main=us["hidden_main"],
        n_feed_topics=p.n_topics - p.n_hidden_topics,
    )
    return _World(
        latent=latent, videos=it["videos"], users=us["users"], item_at=it["item_at"], topic_lo=it["topic_lo"],
        topic_hi=it["topic_hi"], within_cum=it["within_cum"], global_cum=it["global_cum"],
        item_quality=it["item_quality"], item_duration_ms=it["item_duration_ms"], user_weight=us["weight"],
        user_day_share=us["day_share"], feed_topics=us["feed_topics"], feed_cum=us["feed_cum"],
        feed_count=us["feed_count"], hidden_topics=us["hidden_topics"], hidden_cum=us["hidden_cum"],
        hidden_count=us["hidden_count"],
    )


def latent_structure(preset: str | SyntheticPreset, seed: int) -> SyntheticLatent:
    """The latent assignments (topics, interests) behind `generate(preset, seed, ...)`'s files."""
    return _build_world(get_preset(preset), np.random.default_rng(seed)).latent
