/* Minimum-cost assignment (the Hungarian method, O(n^2 m)) between the rows
 * and columns of a cost matrix, as ByteTrack matches tracks to detections. */
#ifndef SIGHT_TRACK_ASSIGN_H
#define SIGHT_TRACK_ASSIGN_H

/* cost: rows x cols, row-major. row_of_col / col_of_row (either may be NULL)
 * receive the match of each column / row, or -1. Pairs whose cost is above
 * max_cost are never matched. Returns 0, or -1 when out of memory. */
int assign_min_cost(const double *cost, int rows, int cols, double max_cost, int *col_of_row, int *row_of_col);

#endif
