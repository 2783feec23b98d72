import { defineCommand } from '../command.js';
import { verify } from '../../ops/verify.js';
import { verifyView } from '../../render/views/verify.js';

const verifyCommand = defineCommand<object, Awaited<ReturnType<typeof verify>>['data']>({
  command: 'verify',
  describe: 'check the whole cluster; every finding has a stable code and a fix; exit 1 on errors',
  examples: [
    ['pmc cluster verify', 'all checks on all nodes'],
    ['pmc cluster verify --json | jq \'.findings[] | select(.severity=="error")\'', 'errors only'],
  ],
  run: (ctx) => verify(ctx),
  view: verifyView,
});

export const clusterCommands = [verifyCommand];
