"""Preference data for BPO: negatives (``negatives``, ``contrastive``), their making and checking
(``bootstrap``), and DPO pairs in trl's format with the released JSON records (``dataset``)."""
