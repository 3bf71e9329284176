// The Sadb contract on this host: userland and daemon always; xfrm and pfkey where the kernel allows (skipped with the reason).

import { defineAllContracts } from './backends';

defineAllContracts();
