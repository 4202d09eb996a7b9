// TypeScript declarations of the SDK's resources and prompts (contract 0.2.0).
import type { Args, Schema } from './index.js';

export interface ResourceDef {
  /** Relative to the plugin: `today`, or a template with `{variables}` (`day/{date}`). */
  path: string;
  /** A programmatic name (defaults to the path with other characters as `_`). */
  name?: string;
  title?: string;
  description?: string;
  mimeType?: string;
  /** The body: a string is text, a `Uint8Array` a blob. `vars` holds a template's variables. */
  read(vars: Record<string, string>): string | Uint8Array;
}
export declare function resource(def: ResourceDef): ResourceDef;

/** A message of a rendered prompt. */
export type Message = { role: 'user' | 'assistant'; text: string } | ['user' | 'assistant', string];
export interface PromptDef<P extends Record<string, Schema<string>>> {
  description?: string;
  title?: string;
  /** Argument name → `s.string(description)`; required unless wrapped in `s.optional`. */
  arguments?: P;
  /** The messages: a string is one user message. */
  render(args: Args<P>): string | Message[];
}
export declare function prompt<P extends Record<string, Schema<string>> = {}>(def: PromptDef<P>): PromptDef<P>;

/** The `resources` export the host calls. */
export interface ResourcesExport {
  list(): unknown;
  read(path: string): unknown;
}
export declare function offerResources(list: ResourceDef[]): ResourcesExport;
/** The `prompts` export the host calls. */
export interface PromptsExport {
  list(): unknown;
  get(name: string, args: { key: string; value: string }[]): unknown;
}
export declare function offerPrompts(prompts: Record<string, PromptDef<any>>): PromptsExport;
