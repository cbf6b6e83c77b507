#include "fedavg/fedavg_private.h"
