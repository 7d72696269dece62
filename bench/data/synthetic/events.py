"""The day-by-day event simulator: _day_events turns one day's active (user, day) cells into
impressions (visits in the main feed, delayed impressions in the other tabs), picks their items from
the world's feed topics, hidden topics or global popularity, and draws the labels; plus the
per-tab intercepts and the visit, tab and label constants it uses."""

from __future__ import annotations

import numpy as np

from bench.data.synthetic._util import MIN_MS, N_TABS, _gumbel_topk_mask, _norm
from bench.data.synthetic.presets import SyntheticPreset
from bench.data.synthetic.world import _World

MAIN_TAB = 1

# ---------------------------------------------------------------------------------------------
# Fixed shapes borrowed (approximately) from the real log

# Relative activity per Beijing hour 0..23.
HOUR_PROFILE = np.array([46, 27, 18, 11, 9, 10, 18, 28, 38, 45, 51, 57, 66, 64, 57, 58, 63, 67, 66, 61, 62, 66, 72, 70],
                        dtype=np.float64)
# Relative frequency of every tab other than 1 (real sample counts, rounded).
SIDE_TAB_SHARE = {0: 9990, 2: 3340, 3: 171, 4: 6980, 5: 329, 6: 5360, 7: 53, 8: 532, 9: 76, 10: 25, 11: 118,
                  12: 252, 13: 65, 14: 10}
# Target click rate per tab (tabs 9/10/11/14 are near 1 or 0 in the real data; kept off the bounds).
TAB_CTR = np.array([0.116, 0.46, 0.424, 0.021, 0.544, 0.237, 0.178, 0.441, 0.040, 0.98, 0.98, 0.002, 0.122,
                    0.363, 0.002])
# Item source mixtures (feed topics, hidden topics, global popularity) and the click-logit bonuses.
MAIN_SOURCE = np.array([0.88, 0.04, 0.08])
SIDE_SOURCE = np.array([0.10, 0.80, 0.10])
MAIN_BONUS = (1.6, 1.6)  # (item in a feed topic, item in a hidden topic)
SIDE_BONUS = (0.8, 2.5)

N_SLOTS = 16  # 90-minute visit slots per day
SLOT_MIN = 1440 // N_SLOTS
START_JITTER_MIN = 15  # a visit starts within the first 15 minutes of its slot
MAX_VISIT_MIN = SLOT_MIN - START_JITTER_MIN - 30  # leaves >= 30 minutes before the next slot
SIDE_DELAY_MEAN_MIN = 45.0
SIDE_DELAY_MAX_MIN = 240.0


# ---------------------------------------------------------------------------------------------
# One day's events


def _tab_intercepts() -> np.ndarray:
    """Per-tab click-logit intercept so that the expected click rate matches TAB_CTR."""
    src = np.where(np.arange(N_TABS)[:, None] == MAIN_TAB, MAIN_SOURCE[None, :], SIDE_SOURCE[None, :])
    bonus = np.array([[MAIN_BONUS[0], MAIN_BONUS[1], 0.0] if t == MAIN_TAB else [SIDE_BONUS[0], SIDE_BONUS[1], 0.0]
                      for t in range(N_TABS)])
    lo, hi = np.full(N_TABS, -20.0), np.full(N_TABS, 20.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        ctr = (src / (1.0 + np.exp(-(mid[:, None] + bonus)))).sum(1)
        lo, hi = np.where(ctr < TAB_CTR, mid, lo), np.where(ctr < TAB_CTR, hi, mid)
    return (lo + hi) / 2


def _sample_in_topics(w: _World, rng: np.random.Generator, topic: np.ndarray) -> np.ndarray:
    a, b = w.within_cum[w.topic_lo[topic]], w.within_cum[w.topic_hi[topic]]
    pos = np.searchsorted(w.within_cum, a + rng.random(len(topic)) * (b - a), side="right") - 1
    return w.item_at[np.clip(pos, w.topic_lo[topic], w.topic_hi[topic] - 1)]


def _sample_global(w: _World, rng: np.random.Generator, size: int) -> np.ndarray:
    pos = np.searchsorted(w.global_cum, rng.random(size) * w.global_cum[-1], side="right") - 1
    return w.item_at[np.clip(pos, 0, len(w.item_at) - 1)]


def _pick(rng: np.random.Generator, choices: np.ndarray, cum: np.ndarray, count: np.ndarray) -> np.ndarray:
    idx = (cum <= rng.random(len(cum))[:, None]).sum(1)
    return choices[np.arange(len(choices)), np.minimum(idx, count - 1)]


def _day_events(p: SyntheticPreset, w: _World, rng: np.random.Generator, users: np.ndarray, n: np.ndarray,
                main_p: float, day_start: int, last_day: bool, period_end: int) -> dict[str, np.ndarray]:
    """Every impression of one day's active (user, day) cells: users[c] has n[c] impressions."""
    C = len(users)
    # Main-feed impressions (>= 1 per cell) and visits.
    m = 1 + rng.binomial(n - 1, main_p)
    s = n - m
    V = np.minimum(N_SLOTS, 1 + rng.binomial(m - 1, 1.0 / p.visit_size))
    phase = rng.random(C) * (15.0 if last_day else SLOT_MIN)
    slot_start = phase[:, None] + SLOT_MIN * np.arange(N_SLOTS)[None, :]  # minutes after midnight
    hour = (slot_start // 60).astype(np.int64) % 24
    chosen = _gumbel_topk_mask(rng, np.log(HOUR_PROFILE[hour]), V)
    vc, vk = np.nonzero(chosen)  # visits, chronological within a cell
    n_vis = len(vc)
    v_start = day_start + (slot_start[vc, vk] + rng.random(n_vis) * START_JITTER_MIN) * MIN_MS
    cell_first_visit = np.concatenate([[0], np.cumsum(V)[:-1]])

    # Spread each cell's extra main impressions over its visits.
    extra = m - V
    ec = np.repeat(np.arange(C), extra)
    ev = cell_first_visit[ec] + (rng.random(len(ec)) * V[ec]).astype(np.int64)
    v_count = 1 + np.bincount(ev, minlength=n_vis)
    mv = np.repeat(np.arange(n_vis), v_count)  # visit of each main impression
    v_first = np.concatenate([[0], np.cumsum(v_count)[:-1]])
    gap = np.exp(rng.normal(np.log(20_000.0), 0.9, len(mv)))  # ms between consecutive impressions
    gap[v_first] = 0.0
    v_dur = np.bincount(mv, weights=gap, minlength=n_vis)
    scale = np.minimum(1.0, MAX_VISIT_MIN * MIN_MS / np.maximum(v_dur, 1.0))
    cum = np.cumsum(gap)
    offset = (cum - cum[v_first][mv]) * scale[mv]
    main_t = v_start[mv] + offset
    v_end = v_start + v_dur * scale

    # Other scenarios: after one of the cell's visits, by a truncated exponential delay.
    sc = np.repeat(np.arange(C), s)
    sv = cell_first_visit[sc] + (rng.random(len(sc)) * V[sc]).astype(np.int64)
    mean = SIDE_DELAY_MEAN_MIN * MIN_MS
    cap = np.minimum(SIDE_DELAY_MAX_MIN * MIN_MS, period_end - 1 - v_end[sv])
    delay = -mean * np.log1p(-rng.random(len(sc)) * (1.0 - np.exp(-cap / mean)))
    side_t = v_end[sv] + np.minimum(delay, cap)
    side_tabs = np.array(list(SIDE_TAB_SHARE), dtype=np.int64)
    side_tab = side_tabs[rng.choice(len(side_tabs), size=len(sc), p=_norm(list(SIDE_TAB_SHARE.values())))]

    user = np.concatenate([users[vc[mv]], users[sc]])
    t_ms = np.floor(np.concatenate([main_t, side_t])).astype(np.int64)
    tab = np.concatenate([np.full(len(mv), MAIN_TAB, dtype=np.int64), side_tab])
    N = len(user)
    is_main = tab == MAIN_TAB

    # Items: feed topics / hidden topics / global popularity.
    u = rng.random(N)
    main_c, side_c = np.cumsum(MAIN_SOURCE), np.cumsum(SIDE_SOURCE)
    source = np.where(is_main, (u >= main_c[0]).astype(np.int64) + (u >= main_c[1]),
                      (u >= side_c[0]).astype(np.int64) + (u >= side_c[1]))
    item = np.empty(N, dtype=np.int64)
    for k, (choices, cum, count) in enumerate(((w.feed_topics, w.feed_cum, w.feed_count),
                                               (w.hidden_topics, w.hidden_cum, w.hidden_count))):
        sel = np.flatnonzero(source == k)
        topic = _pick(rng, choices[user[sel]], cum[user[sel]], count[user[sel]])
        item[sel] = _sample_in_topics(w, rng, topic)
    sel = np.flatnonzero(source == 2)
    item[sel] = _sample_global(w, rng, len(sel))

    # Labels.
    topic = w.latent.item_topic[item]
    in_feed = w.latent.user_feed[user, topic]
    in_hidden = w.latent.user_hidden[user, topic]
    b_feed = np.where(is_main, MAIN_BONUS[0], SIDE_BONUS[0])
    b_hidden = np.where(is_main, MAIN_BONUS[1], SIDE_BONUS[1])
    logit = _TAB_INTERCEPT[tab] + b_feed * in_feed + b_hidden * in_hidden + w.item_quality[item]
    click = rng.random(N) < 1.0 / (1.0 + np.exp(-logit))
    match = in_feed | in_hidden

    def draw(p_click, p_other):
        return (rng.random(N) < np.where(click, p_click, p_other)).astype(np.int64)

    long_view = draw(0.70, 0.002)
    like = draw(np.where(match, 0.035, 0.02), 0.005)
    follow = draw(0.0028, 0.0004)
    comment = draw(0.0056, 0.0001)
    forward = draw(0.0015, 0.00018)
    hate = draw(0.0009, np.where(match, 0.0004, 0.0012))
    profile_enter = draw(0.04, 0.0022)
    profile_stay = np.where((profile_enter == 1) & (rng.random(N) < 0.005),
                            np.round(rng.lognormal(np.log(3_000.0), 1.0, N)), 0).astype(np.int64)
    comment_stay = np.where((draw(0.09, 0.003) == 1) | (comment == 1),
                            np.maximum(8, np.round(rng.lognormal(np.log(6_200.0), 1.0, N))), 0).astype(np.int64)
    duration = w.item_duration_ms[item]
    base_dur = np.where(duration > 0, duration, np.minimum(rng.lognormal(np.log(75_000.0), 0.9, N), 1_200_000.0))
    ratio = np.where(long_view == 1, np.clip(rng.lognormal(np.log(0.9), 0.45, N), 0.05, 2.5),
                     np.clip(rng.lognormal(np.log(0.035), 1.3, N), 0.0, 0.6))
    ratio = np.where(~click & (long_view == 0) & (rng.random(N) < 0.13), 0.0, ratio)
    play = np.round(ratio * base_dur).astype(np.int64)

    return {
        "user_id": user, "video_id": item, "time_ms": t_ms, "is_click": click.astype(np.int64),
        "is_like": like, "is_follow": follow, "is_comment": comment, "is_forward": forward, "is_hate": hate,
        "long_view": long_view, "play_time_ms": play, "duration_ms": duration, "profile_stay_time": profile_stay,
        "comment_stay_time": comment_stay, "is_profile_enter": profile_enter, "is_rand": np.zeros(N, np.int64),
        "tab": tab,
    }


_TAB_INTERCEPT = _tab_intercepts()
