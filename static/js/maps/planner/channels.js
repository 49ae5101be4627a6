/*
 * Planner map: one kind of request (clusters or points, counts, heat, a hotspot layer...)
 * at a time. Starting a new one aborts the one still in flight, and only the latest one
 * may draw. While any is in flight the map element says aria-busy="true".
 */
import { getJSON, isAbort, logError } from "../common.js";

/* A function making the channels of one map element: channel(name). */
export function channelsFor(mapNode) {
  var inFlight = {};

  function busy(name, on) {
    if (on) {
      inFlight[name] = true;
    } else {
      delete inFlight[name];
    }
    mapNode.setAttribute("aria-busy", Object.keys(inFlight).length ? "true" : "false");
  }

  function Channel(name) {
    this.name = name;
    this.controller = null;
  }
  Channel.prototype.start = function () {
    this.abort();
    this.controller = new AbortController();
    busy(this.name, true);
    return this.controller;
  };
  Channel.prototype.isCurrent = function (controller) {
    return this.controller === controller;
  };
  Channel.prototype.finish = function (controller) {
    if (this.controller === controller) {
      this.controller = null;
      busy(this.name, false);
    }
  };
  Channel.prototype.abort = function () {
    if (this.controller) {
      this.controller.abort();
      this.controller = null;
      busy(this.name, false);
    }
  };
  /* GET url as this channel's latest request. handlers.draw(data) runs only while it is
     still the latest (and handlers.wanted(), if given, says its layer is still wanted);
     handlers.fail(error) runs for an error that is not an abort, after it is logged. The
     promise resolves (undefined) either way. */
  Channel.prototype.get = function (url, handlers) {
    var channel = this;
    var request = this.start();
    return getJSON(url, request.signal)
      .then(function (data) {
        if (!channel.isCurrent(request) || (handlers.wanted && !handlers.wanted())) {
          return;
        }
        channel.finish(request);
        handlers.draw(data);
      })
      .catch(function (error) {
        if (channel.isCurrent(request)) {
          channel.finish(request);
        }
        if (!isAbort(error)) {
          logError(error);
          handlers.fail(error);
        }
      });
  };

  return function channel(name) {
    return new Channel(name);
  };
}
