"""The synthetic generator's presets: SyntheticPreset (the knobs of one dataset), the PRESETS table
(tiny, small, pure, kuairand1k), get_preset and UnknownPresetError, GENERATOR_VERSION (part of the
cache directory's name), and the file names and column orders that the presets and the CSV writer
share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bench.errors import ConfigError

GENERATOR_VERSION = 3

LOG_COLUMNS = (
    "user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow", "is_comment",
    "is_forward", "is_hate", "long_view", "play_time_ms", "duration_ms", "profile_stay_time",
    "comment_stay_time", "is_profile_enter", "is_rand", "tab",
)
USER_COLUMNS = (
    "user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
    "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range", "friend_user_num",
    "friend_user_num_range", "register_days", "register_days_range", *(f"onehot_feat{k}" for k in range(18)),
)
VIDEO_COLUMNS = (
    "video_id", "author_id", "video_type", "upload_dt", "upload_type", "visible_status", "video_duration",
    "server_width", "server_height", "music_id", "music_type", "tag",
)
USER_FILE = "user_features_synth.csv"
VIDEO_FILE = "video_features_basic_synth.csv"

# ---------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class SyntheticPreset:
    """Knobs of one synthetic dataset (see the module docstring for what each part plants).

    n_users, n_items, n_impressions: ids 0..n-1 in the feature files; exact log row count
        (duplicates included).
    n_days, start_date: the log covers whole Beijing days start_date .. start_date + n_days - 1.
    n_topics, n_hidden_topics: latent topics; the last n_hidden_topics are niche topics that only
        serve as users' hidden interests.
    main_share: share of impressions in the main feed (tab 1); at least one per active user-day.
    visit_size: mean number of tab-1 impressions per visit (before the cap of 16 visits a day).
    active_day_share: mean share of days on which a user is active.
    silent_user_share: share of users listed in user_features with no log row.
    feed_topic_zipf, hidden_topic_zipf: within-topic popularity exponents (mainstream / niche).
    profile_fidelity: probability that a hidden topic is the one the profile predicts.
    duplicate_share: share of log rows that duplicate another row exactly.
    """

    n_users: int
    n_items: int
    n_impressions: int
    n_days: int
    n_topics: int
    n_hidden_topics: int
    start_date: str = "2022-04-22"
    main_share: float = 0.75
    visit_size: float = 4.0
    active_day_share: float = 0.5
    silent_user_share: float = 0.03
    feed_topic_zipf: float = 1.2
    hidden_topic_zipf: float = 1.2
    profile_fidelity: float = 0.9
    duplicate_share: float = 0.02

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_impressions", "n_days", "n_topics", "n_hidden_topics"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SyntheticPreset.{name} must be a positive integer")
        if self.n_topics - self.n_hidden_topics < 2:
            raise ValueError("SyntheticPreset needs at least 2 mainstream topics (n_topics - n_hidden_topics >= 2)")
        if self.n_items < self.n_topics:
            raise ValueError("SyntheticPreset.n_items must be at least n_topics")
        for name in ("main_share", "active_day_share", "profile_fidelity"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticPreset.{name} must lie in (0, 1]")
        for name in ("silent_user_share", "duplicate_share"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ValueError(f"SyntheticPreset.{name} must lie in [0, 0.5)")
        if self.visit_size < 1:
            raise ValueError("SyntheticPreset.visit_size must be at least 1")
        dt.date.fromisoformat(self.start_date)

    @property
    def first_day(self) -> dt.date:
        return dt.date.fromisoformat(self.start_date)

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.n_days - 1)

    @property
    def log_file(self) -> str:
        a, b = self.first_day, self.last_day
        return f"log_standard_{a.month}_{a.day}_to_{b.month}_{b.day}_synth.csv"

    @property
    def file_names(self) -> tuple[str, str, str]:
        """(log, user features, video features) file names."""
        return self.log_file, USER_FILE, VIDEO_FILE


PRESETS: dict[str, SyntheticPreset] = {
    # Unit tests: generates in well under a second.
    "tiny": SyntheticPreset(n_users=300, n_items=600, n_impressions=12_000, n_days=8, n_topics=16,
                            n_hidden_topics=6, active_day_share=0.6, visit_size=3.5),
    # The product's default dataset.
    "small": SyntheticPreset(n_users=4_000, n_items=3_000, n_impressions=150_000, n_days=15, n_topics=48,
                             n_hidden_topics=18, active_day_share=0.45),
    # Official KuaiRand-Pure sizes (standard log, 2022-04-08 .. 2022-05-08).
    "pure": SyntheticPreset(n_users=27_285, n_items=7_551, n_impressions=1_436_609, n_days=31, n_topics=80,
                            n_hidden_topics=30, start_date="2022-04-08", active_day_share=0.45),
    # Official KuaiRand-1K sizes: few, very active users over a pool of millions of videos.
    "kuairand1k": SyntheticPreset(n_users=1_000, n_items=4_369_953, n_impressions=11_713_045, n_days=31,
                                  n_topics=160, n_hidden_topics=60, start_date="2022-04-08",
                                  active_day_share=0.85, visit_size=12.0, silent_user_share=0.0),
}


class UnknownPresetError(ConfigError, ValueError):
    """A preset name that is not in PRESETS (a ValueError, and a one-line BenchError)."""


def get_preset(preset: str | SyntheticPreset) -> SyntheticPreset:
    if isinstance(preset, SyntheticPreset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise UnknownPresetError(
            f"unknown synthetic preset {preset!r}; valid presets: {', '.join(PRESETS)}"
        ) from None

