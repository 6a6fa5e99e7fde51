// The interfaces of delivery.h have no code of their own; this file anchors the module library.
#include "overlay/delivery.h"
