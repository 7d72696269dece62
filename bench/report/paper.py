"""The IncRec paper's own figures (hit rates in %), quoted for comparison beside ours.

Table 1 is on KuaiRand at K = 1k | 2k; Tables 2 and 3 are on Taobao (the paper's TB-Online model),
quoted for their shape only. Source: ../shared/seeds/increc-paper.txt, Tables 1-3.
"""

from __future__ import annotations

PAPER_KS = (1000, 2000)

# backbone -> (Base@1k, Sup@1k, Inc@1k, Base@2k, Sup@2k, Inc@2k), KuaiRand
TABLE1_KUAIRAND: dict[str, tuple[float, ...]] = {
    "YouTube-DNN": (1.33, 0.65, 2.21, 1.98, 0.96, 3.27),
    "DSSM": (1.37, 0.63, 3.41, 2.00, 1.01, 5.85),
    "SASRec": (1.15, 0.59, 3.30, 1.74, 1.02, 5.81),
    "ComiRec": (1.17, 0.49, 2.24, 1.67, 0.70, 3.39),
    "KuaiFormer": (1.56, 0.71, 2.52, 2.27, 0.88, 4.64),
}

# variant -> (Base@1k, Inc@1k, Base@2k, Inc@2k), Taobao; the TB-Online row's Inc is its Sup
TABLE2_TAOBAO: dict[str, tuple[float, ...]] = {
    "TB-Online": (1.44, 0.87, 2.30, 1.45),
    "TB-ITG": (1.44, 1.42, 2.30, 2.41),
    "TB-boost": (1.44, 1.38, 2.30, 2.73),
    "IncRec-NA": (1.44, 2.15, 2.30, 3.49),
}

# variant -> (Base@1k, Inc@1k, Base@2k, Inc@2k, Exposure@1k, Exposure@2k), Taobao
TABLE3_TAOBAO: dict[str, tuple[float, ...]] = {
    "IncRec-NA": (1.44, 2.15, 2.30, 3.49, 2.44, 3.32),
    "IncRec-ori": (1.44, 1.54, 2.30, 2.69, 3.27, 3.95),
    "IncRec": (1.44, 1.66, 2.30, 2.92, 3.41, 4.35),
}

VARIANT_LABELS = {
    "off": "TB-Online",
    "tb_itg": "TB-ITG",
    "tb_boost": "TB-boost",
    "na": "IncRec-NA",
    "ori": "IncRec-ori",
    "on": "IncRec",
}
