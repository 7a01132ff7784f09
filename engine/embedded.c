#include "embedded.h"

#include <string.h>

const usher_embedded_file *usher_embedded_find(const usher_embedded_file *table, const char *name)
{
    for (; table != NULL && table->name != NULL; table++) {
        if (strcmp(table->name, name) == 0)
            return table;
    }
    return NULL;
}
