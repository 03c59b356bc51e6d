#include "track/assign.h"

#include <float.h>
#include <stdlib.h>

/* The potentials form of the Hungarian method for n <= m: rows are added one
 * at a time, each along a shortest augmenting path over reduced costs. */
static int hungarian(const double *c, int n, int m, int *col_of_row)
{
    double *u = calloc((size_t)n + 1, sizeof *u), *v = calloc((size_t)m + 1, sizeof *v);
    double *minv = malloc(((size_t)m + 1) * sizeof *minv);
    int *p = calloc((size_t)m + 1, sizeof *p), *way = calloc((size_t)m + 1, sizeof *way);
    char *used = malloc((size_t)m + 1);
    int rc = u && v && minv && p && way && used ? 0 : -1;
    for (int i = 1; rc == 0 && i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++) {
            minv[j] = DBL_MAX;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = DBL_MAX;
            for (int j = 1; j <= m; j++) {
                if (used[j]) continue;
                double cur = c[(size_t)(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= m; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    if (rc == 0) {
        for (int i = 0; i < n; i++) col_of_row[i] = -1;
        for (int j = 1; j <= m; j++)
            if (p[j]) col_of_row[p[j] - 1] = j - 1;
    }
    free(u);
    free(v);
    free(minv);
    free(p);
    free(way);
    free(used);
    return rc;
}

int assign_min_cost(const double *cost, int rows, int cols, double max_cost, int *col_of_row, int *row_of_col)
{
    for (int i = 0; col_of_row && i < rows; i++) col_of_row[i] = -1;
    for (int j = 0; row_of_col && j < cols; j++) row_of_col[j] = -1;
    if (rows <= 0 || cols <= 0) return 0;
    /* Pairs over max_cost cost more than any feasible set of pairs together,
     * so the optimum takes one only when nothing else is left; such pairs are
     * then dropped. */
    int n = rows <= cols ? rows : cols, m = rows <= cols ? cols : rows;
    double big = (max_cost + 1.0) * (double)(n + 1) + 1.0;
    double *c = malloc((size_t)n * m * sizeof *c);
    int *match = malloc((size_t)n * sizeof *match);
    if (!c || !match) {
        free(c);
        free(match);
        return -1;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double x = rows <= cols ? cost[(size_t)i * cols + j] : cost[(size_t)j * cols + i];
            c[(size_t)i * m + j] = x > max_cost ? big : x;
        }
    int rc = hungarian(c, n, m, match);
    for (int i = 0; rc == 0 && i < n; i++) {
        int j = match[i];
        if (j < 0 || c[(size_t)i * m + j] > max_cost) continue;
        int r = rows <= cols ? i : j, col = rows <= cols ? j : i;
        if (col_of_row) col_of_row[r] = col;
        if (row_of_col) row_of_col[col] = r;
    }
    free(c);
    free(match);
    return rc;
}
