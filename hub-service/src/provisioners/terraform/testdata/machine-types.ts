/** The built-in machine table plus one type only an operator's catalog file names (an L40S). */
import { INSTANCE_TYPES } from '@ngsci/terraform';

export const WITH_L40S = {
  ...INSTANCE_TYPES,
  'g6e.xlarge': {
    cloud: 'aws' as const,
    family: 'g6e',
    machineType: 'g6e.xlarge',
    vcpu: 4,
    memoryGiB: 32,
    gpu: { model: 'L40S', count: 1, memoryGiB: 48 },
  },
};
