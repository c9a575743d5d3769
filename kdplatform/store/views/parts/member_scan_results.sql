-- scan_results rows of members of D: every scanned example but the held-out non-members (examples split
-- heldout, scanned for membership inference since migration 0005). Every view over scan_results reads
-- these, but those that compare members with non-members.
SELECT s.*
FROM scan_results s
WHERE NOT EXISTS (
    SELECT 1 FROM examples h
    WHERE h.dataset_id = s.dataset_id AND h.example_id = s.example_id AND h.split = 'heldout')
