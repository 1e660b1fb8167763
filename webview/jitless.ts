import { z } from 'zod';

// Imported before anything that builds a schema: the panel's CSP forbids eval, and zod's JIT probe
// (new Function) would be reported as a CSP violation the moment a schema is created.
z.config({ jitless: true });
