// Internal constructors: a class only its factory builds refuses `new` from anywhere else, with a clear TypeError.

/** The gate of one class: its factory builds through make(), its constructor calls check() before anything else. */
export class InternalGate {
  #open = 0;
  readonly #message: string;

  /** `factory`: what a caller should use instead (`createNattSocket()`), `what`: the class (`a NattSocket`). */
  constructor(factory: string, what: string) {
    this.#message = `use ${factory} to make ${what}`;
  }

  /** Run `build` (which calls the constructor) with the gate open. */
  make<T>(build: () => T): T {
    this.#open++;
    try {
      return build();
    } finally {
      this.#open--;
    }
  }

  /** Throw unless the factory is building: a caller's own `new` gets a TypeError saying what to use. */
  check(): void {
    if (this.#open === 0) throw new TypeError(this.#message);
  }
}
