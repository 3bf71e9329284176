// The Sadb contract inside the Linux VM: the same application code against pfkey, xfrm and userland.

import { defineAllContracts } from '../contract/backends';

defineAllContracts();
