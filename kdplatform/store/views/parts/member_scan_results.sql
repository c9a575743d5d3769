-- scan_results rows of members of D: every scanned example but the held-out non-members (examples split
-- heldout, scanned for membership inference since migration 0005). Every view over scan_results reads
-- these, but those that compare members with non-members. An anti-join written as a LEFT JOIN on the
-- held-out examples (the key is examples' primary key, so no row is repeated): DuckDB decorrelates a NOT
-- EXISTS by grouping every scanned example first, several times slower than the scan itself.
SELECT s.*
FROM scan_results s
LEFT JOIN examples h ON h.dataset_id = s.dataset_id AND h.example_id = s.example_id AND h.split = 'heldout'
WHERE h.example_id IS NULL
