// Node 20 lacks fs.globSync, which the conformance CLI imports by name; this loader supplies it.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
